import MurmurCLI

MurmurCommand.main()
