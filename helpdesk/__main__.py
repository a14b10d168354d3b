from helpdesk.command import main

raise SystemExit(main())
