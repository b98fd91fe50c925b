"""Fills Student.nickname_key, the skeleton of each nickname (peftlab/classroom/names.py).

Before keys, nicknames were unique in a class only whatever the case: "Ana" and "Аna" (with a
Cyrillic А) could both have joined. Their keys would clash, and 0004 makes keys unique per class.
Neither student is lost: the first to have joined (the lowest id) keeps the plain key, each later
one gets the key, a line end and its own id ("ana\\n42"). No nickname's key holds a line end, so
no new student can take these keys, and peftlab/classroom/views.py still finds such a student for its own
browser (a key that starts with the typed nickname's key and the line end); to other browsers the
nickname stays taken."""

from django.db import migrations

from peftlab.classroom.models import KEY_CLASH_SEPARATOR
from peftlab.classroom.names import skeleton


def fill_keys(apps, schema_editor):
    Student = apps.get_model("classroom", "Student")
    taken = set()
    students = list(Student.objects.order_by("classroom_id", "id").only("id", "classroom_id", "nickname"))
    for student in students:
        key = skeleton(student.nickname)
        if (student.classroom_id, key) in taken:
            key = f"{key}{KEY_CLASH_SEPARATOR}{student.pk}"
        taken.add((student.classroom_id, key))
        student.nickname_key = key
    Student.objects.bulk_update(students, ["nickname_key"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("classroom", "0002_student_nickname_key"),
    ]

    operations = [
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
    ]
