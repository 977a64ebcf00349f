"""The impact ledger (issue 8): what each automation saved, measured from its runs.

`money.py` holds the pure arithmetic (savings, payback, NPV); `ledger.py` reads the run ledger
into weekly lines per automation, each traceable to the runs behind it; `report.py` renders the
same lines for the terminal, CSV, HTML and the web app's Impact page.
"""
