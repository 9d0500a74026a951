"""Field service: people who go to the door, and the work they do there.

Responders (community workers, grid workers 网格员, volunteers, nurses) with a
service area and an on-duty state; dispatch work orders raised from alerts, with
their own lifecycle (dispatched → accepted | declined → on the way → arrived →
done) and deadlines (accept within 5 min, arrive within the site's promise).
Everything is stored in the relational store, audited as order events, and runs
on event time: the timers are advanced with the time passed in, never read here.
"""
