import Testing

@Suite struct MeshPlaceholder {}
