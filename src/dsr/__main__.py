from dsr.cli import main

main()
