from statusdash.cli.main import main

main()
