import Testing

@Suite struct MurmurCLIPlaceholder {}
