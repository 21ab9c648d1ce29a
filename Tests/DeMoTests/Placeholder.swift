import Testing

@Suite struct DeMoPlaceholder {}
