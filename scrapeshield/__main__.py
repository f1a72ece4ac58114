from scrapeshield.cli import main

main()
