from gridbot.cli import main

raise SystemExit(main())
