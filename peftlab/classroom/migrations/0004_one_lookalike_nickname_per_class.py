# Nicknames are unique in a class by their key (0003 filled it) instead of by their lower case.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("classroom", "0003_fill_nickname_keys"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="student",
            name="one_nickname_per_class",
        ),
        migrations.AddConstraint(
            model_name="student",
            constraint=models.UniqueConstraint(
                fields=("classroom", "nickname_key"), name="one_lookalike_nickname_per_class"
            ),
        ),
    ]
