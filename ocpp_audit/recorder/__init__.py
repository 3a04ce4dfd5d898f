"""Everything that touches the wire: the codec, the capture writer, the engines, the built-in central system."""
