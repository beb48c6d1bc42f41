"""Study data: the schema, loading with validation, and provenance checks."""

from hccmeta.data.evidence import Evidence, Located
from hccmeta.data.loader import default_data_dir, load_studies
from hccmeta.data.schema import Study

__all__ = ["Evidence", "Located", "Study", "default_data_dir", "load_studies"]
