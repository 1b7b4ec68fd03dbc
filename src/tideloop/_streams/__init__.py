"""Parts of ``tideloop.streams``, the public module (which re-exports them)."""
