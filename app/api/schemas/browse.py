"""Response shapes of the browse routes: the signed link that opens a contact sheet."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class ContactSheetLink(BaseModel):
    model_config = example_of(ex.CONTACT_SHEET_LINK)

    url: str = Field(
        description="Path of the contact sheet with a read-only token for this sweep; open it "
        "in a browser on this server. Its images, videos and zip download use the same token.",
        examples=["/browse/sweeps/4c1e…/contact-sheet?token=1767225600.Zm9v…"],
    )
    expires_at: datetime = Field(description="When the link and every link in the page expire.")
