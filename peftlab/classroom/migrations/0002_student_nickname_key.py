# The key nicknames are compared by (peftlab/classroom/names.py); 0003 fills it, 0004 makes it unique.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("classroom", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="student",
            name="nickname_key",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
    ]
