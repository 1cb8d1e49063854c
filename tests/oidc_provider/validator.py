from oauth2_provider.oauth2_validators import OAuth2Validator


class MemberNumberValidator(OAuth2Validator):
    """Adds the holder's member number (kept here in the user's last_name) to the claims."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "member_number": "openid", "name": "openid"}

    def get_additional_claims(self, request):
        return {"member_number": request.user.last_name, "name": request.user.first_name}
