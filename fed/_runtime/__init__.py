"""Runtime: call ids, FedObjects, and dispatch of calls to local Ray or to a peer."""
