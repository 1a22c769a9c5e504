"""Review: an examiner categorises a scan's unknown material, blurred by default, with an
exposure ledger the server enforces; decisions become bank entries and series.

* ``scan``: which folders may be reviewed (a finished scan) and why not otherwise;
* ``queue``: the unknown groups ranked as in the report, then single items; known material
  as counts only;
* ``store``: decisions in the scan's own ``scan.db``, committed per action;
* ``derive``: the only pictures a browser receives (small, greyscale, blurred by default);
* ``ledger``: seconds of clear and lightly-blurred viewing, caps and breaks (node store);
* ``series``: the seam to the series that exist (bank labels today);
* ``export``: decisions into a bank and an updated ``case.vics.json``;
* ``service``: the rules, in one place; ``web``: the pages over it.
"""
