"""``python -m vigil.demo``: build the demo and scan it (see ``vigil.demo.build``)."""

from vigil.demo.build import main

raise SystemExit(main())
