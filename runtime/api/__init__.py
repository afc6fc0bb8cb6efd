"""What generated code links against: operation table entries, call context, the error model, answers."""
