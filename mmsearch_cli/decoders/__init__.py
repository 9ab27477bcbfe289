"""Media decoders: files in, ``MediaItem``s out. One module per kind of media."""
