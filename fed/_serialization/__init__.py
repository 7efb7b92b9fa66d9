"""Serialization: turning values into wire segments and back, with an allow-list of constructors."""
