"""Serialization: fed's pickle-free codec for values between parties (see ``codec``)."""
