"""``mms serve``: a warm server for one index (``server``), the light client every command
tries first (``client``), their wire (``protocol``) and the file watcher (``watch``)."""
