"""Takedown and recirculation: reported URLs, notices that repeat until the material is
gone, removal verified by re-checking, re-uploads linked, and reports (docs/takedown.md).

Modules, each with one job: ``urls`` (a URL at the door, registrable domains),
``intake`` (reporting URLs, CSV), ``fetch`` (the safe fetcher), ``repo`` (every database
read and write), ``schedule`` (the notice loop's cycle, exactly-once sending), ``render``
(notices as text, JSON, e-mail), ``mail`` (SMTP relay or outbox), ``worker`` (the loop in
``vigil serve``), ``reports`` (per host, per series; HTML and JSON), ``clock``,
``settings``, ``contacts``.

Nothing is imported here: the CLI and the API import what they use.
"""
