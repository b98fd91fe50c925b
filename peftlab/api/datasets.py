"""Train on your own CSV: POST /api/datasets, GET /api/datasets, GET and DELETE /api/datasets/{id}.

An upload is read into memory (never more than uploads.MAX_BYTES of it), checked by
peftlab/api/uploads.py, and stored in the database with its seeded train/validation split, or
refused with {"error": ...} and nothing stored. The dataset is then the task ``upload-<id>`` for
whoever may see it (peftlab/classroom/access.py): POST /api/runs, races and sweeps take it by that name.
"""

from io import BytesIO

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.db.models import Count
from django.http.multipartparser import MultiPartParserError
from ninja import Query, Router

from peftlab.api import uploads
from peftlab.api.csrf import require_csrf
from peftlab.api.errors import Error
from peftlab.classroom import access, quotas
from peftlab.classroom.viewer import viewer_of
from peftlab.errors import Invalid, NotFound, TooLarge
from peftlab.runs.models import Dataset, DatasetExample

router = Router(tags=["datasets"])

SHOWN_ROWS = 10  # GET /api/datasets/{id}: the first rows, as stored
# A multipart body holds the file plus the boundaries, headers and the name field; a body larger
# than the file limit and this is refused before a byte of it is read.
BODY_SLACK = 64 * 1024

MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"a UTF-8 CSV with the header text,label; at most {uploads.MAX_BYTES:,} bytes, "
                            f"{uploads.MAX_ROWS:,} rows, {uploads.MIN_LABELS}–{uploads.MAX_LABELS} labels with "
                            f"at least {uploads.MIN_PER_LABEL} examples each",
                        },
                        "name": {
                            "type": "string",
                            "maxLength": uploads.MAX_NAME_CHARS,
                            "description": "the dataset's name (default: the file's name)",
                        },
                    },
                }
            }
        },
    }
}


class _FileTooLarge(MultiPartParserError):
    def __init__(self, size: int):
        super().__init__(f"file of {size} bytes")
        self.size = size


class _CappedUpload(FileUploadHandler):
    """Keeps the uploaded file in memory up to uploads.MAX_BYTES; past that it stores nothing
    more, only counts, and refuses the file once its whole size is known."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.buffer, self.size = BytesIO(), 0

    def receive_data_chunk(self, raw_data, start):
        self.size += len(raw_data)
        if self.size <= uploads.MAX_BYTES:
            self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self.size > uploads.MAX_BYTES:
            raise _FileTooLarge(self.size)
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            self.buffer,
            self.field_name,
            self.file_name,
            self.content_type,
            self.size,
            self.charset,
            self.content_type_extra,
        )


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _owner_label(viewer, dataset: Dataset) -> str:
    if dataset.owner == viewer.owner:
        return "you"
    if dataset.student_id is not None:
        return dataset.student.nickname
    return "your teacher"


def _describe(viewer, dataset: Dataset, may_delete: bool | None = None) -> dict:
    """The dataset as the API shows it to `viewer`; `may_delete` when the caller already knows."""
    if may_delete is None:
        may_delete = access.actable_datasets(viewer).filter(pk=dataset.pk).exists()
    return {**dataset.summary(), "uploaded_by": _owner_label(viewer, dataset), "may_delete": may_delete}


@router.post(
    "",
    response={201: dict, 400: Error, 403: Error, 409: Error, 413: Error, 429: Error, 503: Error},
    openapi_extra=MULTIPART,
    summary="Upload a CSV (text,label) as a dataset to train on",
)
def create_dataset(request):
    length = _content_length(request)
    if length > uploads.MAX_BYTES + BODY_SLACK:
        raise uploads.size_error(length)  # refused before the body is read
    try:
        request.upload_handlers = [_CappedUpload(request)]
        require_csrf(request)  # reads the form, through the handler above
        files = request.FILES.getlist("file")
        name = request.POST.get("name")
    except _FileTooLarge as exc:
        raise uploads.size_error(exc.size) from None
    except RequestDataTooBig:
        raise TooLarge(
            f"the form fields besides the file are larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes"
        ) from None
    except (MultiPartParserError, SuspiciousOperation) as exc:
        raise Invalid(
            f"send the file as multipart/form-data with the fields file and name ({type(exc).__name__})"
        ) from None
    submitter = quotas.submitter(request)  # an upload counts as a submission
    if not files:
        raise Invalid("choose a CSV file to upload (the form field 'file')")
    if len(files) > 1:
        raise Invalid(f"one CSV file at a time (got {len(files)})")
    upload = files[0]
    parsed = uploads.parse_csv(upload.read())  # or UploadError, UploadTooLarge
    name = uploads.clean_name(name, upload.name)
    sides = uploads.split(parsed)
    with transaction.atomic():
        submitter.check_dataset()
        dataset = Dataset.objects.create(
            name=name,
            file_name=(upload.name or "")[:255],
            labels=parsed.labels,
            **submitter.dataset_fields(),
            train_size=sides.count(uploads.TRAIN),
            val_size=sides.count(uploads.VAL),
        )
        DatasetExample.objects.bulk_create(
            [
                DatasetExample(dataset=dataset, position=i, split=side, text=text, label=label)
                for i, ((text, label), side) in enumerate(zip(parsed.rows, sides))
            ],
            batch_size=500,
        )
    return 201, _describe(viewer_of(request), dataset, may_delete=True)


@router.get("", response={200: list, 400: Error}, summary="The uploaded datasets this visitor may see, newest first")
def list_datasets(request, limit: int = Query(50, ge=1, le=200)):
    viewer = viewer_of(request)
    shown = list(access.datasets_of(viewer).select_related("student", "classroom")[:limit])
    deletable = set(access.actable_datasets(viewer).filter(pk__in=[d.pk for d in shown]).values_list("pk", flat=True))
    return [_describe(viewer, d, d.pk in deletable) for d in shown]


def _get(request, dataset_id: int) -> Dataset:
    dataset = access.visible_datasets(request).select_related("student", "classroom").filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound(f"there is no dataset {dataset_id}")
    return dataset


@router.get(
    "/{dataset_id}",
    response={200: dict, 404: Error},
    summary="A dataset: its labels, split sizes, examples per label and first rows as stored",
)
def get_dataset(request, dataset_id: int):
    dataset = _get(request, dataset_id)
    counts = {
        (row["label"], row["split"]): row["n"]
        for row in dataset.examples.values("label", "split").annotate(n=Count("id"))
    }
    rows = dataset.examples.order_by("position")[:SHOWN_ROWS]
    return {
        **_describe(viewer_of(request), dataset),
        "label_counts": [
            {
                "label": label,
                "train": counts.get((i, DatasetExample.TRAIN), 0),
                "val": counts.get((i, DatasetExample.VAL), 0),
            }
            for i, label in enumerate(dataset.labels)
        ],
        "rows": [{"text": r.text, "label": dataset.labels[r.label], "split": r.split} for r in rows],
    }


@router.delete(
    "/{dataset_id}",
    response={204: None, 403: Error, 404: Error},
    summary="Delete a dataset (who uploaded it, or the teacher of its class)",
)
def delete_dataset(request, dataset_id: int):
    require_csrf(request)
    # Only who uploaded it, or the teacher of its class; anyone else finds no such dataset.
    dataset = access.actable_datasets(viewer_of(request)).filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound(f"there is no dataset {dataset_id}")
    dataset.delete()
    return 204, None
