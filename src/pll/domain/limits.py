"""How much one request may ask of the server (DESIGN §3 rule 8: every request's work and
size are bounded), in one place. ``/fhir/metadata`` states them and the README repeats them.

A real patient's list holds tens of medicines (polypharmacy is counted from five; the
longest lists in nursing homes hold 30-50). The limits cover any real patient many times
over, while the largest change they allow — a full transaction Bundle of one substance onto a
list just under its limit — holds SQLite's single writer well under a second on a two-core
machine (``bench/limits_bench.py`` measures it).
"""

from __future__ import annotations

#: Entries in one transaction Bundle (``POST /fhir``, ``POST List/$check``) and draft orders
#: in one CDS Hooks request. A larger Bundle is refused (422) before any of it is read.
MAX_BUNDLE_ENTRIES = 200

#: Medicines on one list: entries in use, entries discontinued and still shown (90 days),
#: and prescriptions in use that no entry in use holds. A change that would take a list past
#: it is refused (422) and changes nothing; a change that does not grow the list (a dose
#: change, a discontinuation) is never refused for it.
MAX_LIST_ENTRIES = 300

#: Decision-support findings carried by one answer ($check, a write's OperationOutcome, a
#: refusal, a transaction response, CDS Hooks cards): every blocking finding, then warnings
#: and information up to this many in all; the answer says how many it left out. A blocking
#: finding is never left out, because an override must never cover a finding its author did
#: not see (DESIGN §3 rule 6). Their number needs no cap of its own: it is at most the FEST
#: interactions of relevance 1 among the drugs in view (each one finding, however many drugs
#: it names) plus the patient's recorded reactions (one CAVE finding each), and the drugs in
#: view are bounded by MAX_LIST_ENTRIES and MAX_BUNDLE_ENTRIES.
MAX_FINDINGS = 100

#: Names spelled out in the message of a finding that does not block; the rest are counted
#: ("og 12 andre"). A blocking finding names every drug it concerns, since an override is
#: given for what it says. Every entry is still named, as a reference, in the finding's
#: ``expression``.
MAX_NAMES = 10

#: Resources in one source list that ``List/$compare`` and ``$reconcile`` (and the web's
#: samstemming) compare a list with: a Bundle's entries, or a List's entries and the
#: resources it contains. A discharge list or a patient's own list holds tens of medicines;
#: the limit is that of a whole list, so even another system's copy of the fullest list PLL
#: keeps can be compared. A larger source is refused (422) before any of it is read.
MAX_SOURCE_ITEMS = MAX_LIST_ENTRIES

#: An SFM Basis document (``Patient/$sendMedication``, ``pll import sfm``): entries in its
#: Bundle, its ``MedicationStatement`` s and its ``MedicationRequest`` s. Each medicine is one
#: statement (carrying its prescription), each older link of a renewal chain one more, and
#: each drug a ``Medication``; the rest are the parties, the M25 messages, the patient's
#: reactions and dispensings. The fullest list PLL keeps (300 medicines) with renewal chains,
#: a history of ended entries and years of dispensings fits; a larger document is refused
#: (422) before any of it is read. ``MedicationRequest`` s are only the prescriptions of
#: goods that are not medicines (BANDA), which PLL does not keep.
MAX_SFM_ENTRIES = 5_000
MAX_SFM_STATEMENTS = 1_000
MAX_SFM_REQUESTS = 300

#: Resources one ``$sendMedication`` writes: each prescription and entry it creates or
#: changes, and for a renewal the prescription it renews too. 200 new medicines with their
#: prescriptions fit (a full transaction Bundle's worth of medicines), or 133 renewals; a
#: larger change is sent in parts. It keeps the largest send's transaction near that of the
#: largest Bundle (``bench/operation_limits_bench.py``). Checked before anything is written,
#: as is the size of the list the send would leave (``MAX_LIST_ENTRIES``).
MAX_SFM_WRITES = 2 * MAX_BUNDLE_ENTRIES

#: Items in one multidose pharmacy's proposal (``List/$propose``, M25.2): a pharmacy proposes
#: a few changes at a time; a proposal may still touch a third of the fullest list.
MAX_PROPOSAL_ITEMS = 100

#: Items of a patient's proposals waiting for the responsible doctor's decision: a new
#: proposal that would pass it is refused (422) until the doctor has decided. One decision
#: (``List/$decide``) names at most as many items, so accepting all of them at once is at
#: most one transaction Bundle's worth of change.
MAX_PENDING_ITEMS = MAX_BUNDLE_ENTRIES

#: Items in one packing report (``List/$packing-report``, M25.3): one per entry packed, and a
#: list holds at most ``MAX_LIST_ENTRIES`` medicines.
MAX_PACKING_ITEMS = MAX_LIST_ENTRIES

#: Drug reactions (CAVE) recorded as active for one patient. Each is held against every
#: medicine on every change, and each that matches is a blocking finding that every answer
#: shows: a real patient has a handful; the limit keeps the checks and the answers bounded.
MAX_ACTIVE_REACTIONS = 200
