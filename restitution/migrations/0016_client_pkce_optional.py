"""The operator may let a confidential client exchange a code without PKCE (PimsClient.pkce_optional);
public clients always need it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("restitution", "0015_record_document_url")]
    operations = [
        migrations.AddField(
            model_name="pimsclient",
            name="pkce_optional",
            field=models.BooleanField(
                default=False, verbose_name="PKCE optional",
                help_text="Confidential clients only: let this client exchange a code without PKCE (e.g. a "
                          "personal cloud whose OAuth flow sends none). Its secret then alone binds the code to "
                          "it; an intercepted code plus a leaked secret gives a token (docs/security.md). Public "
                          "clients always need PKCE."),
        ),
    ]
