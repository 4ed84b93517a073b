from regcore.cli import main

main()
