import Testing

@Suite struct CheckpointingPlaceholder {}
