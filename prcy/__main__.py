from prcy.cli import main

main()
