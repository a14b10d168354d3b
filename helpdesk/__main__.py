from helpdesk.cli.entry import main

raise SystemExit(main())
