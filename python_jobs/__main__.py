from python_jobs.cli import main

raise SystemExit(main())
