"""A report on compared models: one self-contained HTML page with PNG plots.

:func:`make_report` takes fitted models, the test set and their
:class:`~dotrec.comparison.Comparison`, and returns a :class:`Report` whose
``write(path)`` writes one HTML file that opens without network access: the
style is inline and the plots, drawn with matplotlib (``pip install
'dotrec[report]'``), are PNG data URIs. The plots: training loss and
validation metric per epoch, metrics at K, item popularity against how often
each item is recommended, a reliability diagram, and a 2-D map of the item
embeddings coloured by genre.

Like :mod:`dotrec.comparison`, it reads models through the Recommender
contract and their ``fit_info``, never a concrete model class.
"""

from dotrec.report._build import make_report
from dotrec.report._figures import check_matplotlib
from dotrec.report._measures import check_tsne, uses_validation
from dotrec.report._page import Report, Section

__all__ = [
    "Report",
    "Section",
    "check_matplotlib",
    "check_tsne",
    "make_report",
    "uses_validation",
]
