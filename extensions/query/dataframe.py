"""Arrow results into pandas with dtypes that keep what the engine meant.

Integers and booleans become pandas' nullable dtypes (a NULL does not turn a bigint column
into floats), decimals stay exact (Arrow-backed decimal dtype), dates and timestamps become
datetime64 and text the default string dtype.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _dtype_for(kind: pa.DataType) -> object | None:
    if kind in _NULLABLE:
        return _NULLABLE[kind]
    if pa.types.is_decimal(kind):
        return pd.ArrowDtype(kind)
    return None


def to_dataframe(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper=_dtype_for, date_as_object=False, split_blocks=True)
