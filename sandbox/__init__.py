"""amoCRM (Kommo) API sandbox: one emulated account with OAuth, API v4 subset, webhooks.

Independent of the Chatsource application (imports nothing from core/web/workers).

    from sandbox.server import SandboxServer        # threaded server for tests
    from sandbox.app import create_sandbox_app      # Flask app factory
    from sandbox import webhook_format              # amo form encoding (no Flask needed)

``sandbox.webhook_format`` is importable without Flask; the other modules need flask + requests.
"""

__all__ = ["create_sandbox_app", "SandboxServer", "SandboxState"]


def __getattr__(name: str):  # lazy, so `import sandbox.webhook_format` never imports Flask
    if name == "create_sandbox_app":
        from .app import create_sandbox_app

        return create_sandbox_app
    if name == "SandboxServer":
        from .server import SandboxServer

        return SandboxServer
    if name == "SandboxState":
        from .state import SandboxState

        return SandboxState
    raise AttributeError(name)
