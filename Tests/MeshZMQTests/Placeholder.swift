import Testing

@Suite struct MeshZMQPlaceholder {}
