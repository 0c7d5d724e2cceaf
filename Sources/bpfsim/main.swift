import BPFSimCommands

BPFSimCommand.main()
