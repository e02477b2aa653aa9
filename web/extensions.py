"""Flask extension singletons, initialised in `create_app` (cookiecutter-flask style)."""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from core.platform.db import Base

# The models live in core/ on a plain declarative Base; Flask-SQLAlchemy only manages engines and
# the request-scoped session over the same metadata.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate()
csrf = CSRFProtect()

# --- admin: login sessions and the Russian/English UI --------------------------------
from flask_babel import Babel  # noqa: E402
from flask_login import LoginManager  # noqa: E402

login_manager = LoginManager()
babel = Babel()
