"""Speaking to the tools agencies already run, over Vigil's own verified feeds and matcher.

* ``feed``: reading one bank's feed from a node, page by page, checked by the code
  ``vigil peer sync`` runs (``vigil.exchange.verify``);
* ``opinions``: Vigil categories as positive / investigation-seed / negative opinions;
* ``vpdqjson``: vPDQ in python-threatexchange's text form;
* ``pytx``: the python-threatexchange extension (the optional extra ``vigil[pytx]``);
* ``hma``: the answers of HMA-compatible lookups (``vigil.api.routes.hma`` serves them).
"""
