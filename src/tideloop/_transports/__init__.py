"""Transports: each a Python facade (an asyncio transport class) over a compiled core."""
