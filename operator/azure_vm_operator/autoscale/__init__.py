"""The built-in autoscaler's pure core (issue #9): the typed ``spec.autoscale`` (``spec``), the profile in force at
an instant (``profiles``) and the decision (``decide``). No I/O: the loop that fetches metrics, writes the count
through /scale and publishes status, Events and metrics lives with the controllers."""
