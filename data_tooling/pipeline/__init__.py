"""The corpus pipeline: documents flow through small steps with one interface."""
