"""lbcp's Python client, over the slaves' HTTP/JSON API (standard library only).

It behaves as liblbclient (include/lb/client.h) does:

* :meth:`Client.request` asks a slave for an app. A redirect (HTTP 307 to the
  chosen slave's API, preselection in the query) is followed, at most
  ``max_hops`` slaves and never the same one twice. A slave that cannot be
  reached, does not answer in time, or has no master (503) is skipped for the
  next one, in rounds with a doubling backoff.
* Sessions are held until released: a background thread renews each at a
  third of its remaining life (``PUT /v1/sessions/{id}``); :meth:`Client.release`
  and :meth:`Client.close` release them (``DELETE``).
* :class:`Sticky` is a connection that reconnects as the seed describes: the
  same process first, then a new request under the same identity (affinity
  brings the client back to its server), and when no slave answers, a process
  this client already holds on one of the alternate servers.

Thread-safety: one Client may be shared by threads (a lock guards its table of
held sessions); a Sticky belongs to one thread at a time.
"""
from .client import Assignment, Client, LbError, Sticky

__all__ = ["Assignment", "Client", "LbError", "Sticky"]
__version__ = "0.1.0"
