from dockward.cli import main

raise SystemExit(main())
