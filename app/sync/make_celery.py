"""The Celery entry (as `make_celery.py` in Flask's `examples/celery`): the App's own Celery.

celery -A app.sync.make_celery worker    # runs the jobs (as many as you like)
celery -A app.sync.make_celery beat      # one per deployment: the periodic sync, the sweep
"""

from app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
