"""C99 source generators behind :func:`edgeloop.edge._cexport.export_c`.

:mod:`.literals` writes C constants exactly (float32 values round-trip, int32 extremes,
escaped strings), :mod:`.model` the int8 network (``model.h``/``model.c``) and
:mod:`.features` the feature blocks (``features.h``/``features.c``). The C is kept in these
modules as Python string templates, so the package needs no data files.
"""
