"""The console's endpoint forms: create (the new secret shown once), edit, delete after a
confirmation page.

The form's text becomes the API's keyword arguments (form_fields); the service layer validates
them (build_spec, build_changes) and applies the tenant's scope, exactly as for the API. A refused
form is shown again as typed, the service's message beside the field it names.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ethhook.console import form_fields
from ethhook.console.web import (
    ConsoleRoute,
    as_visitor,
    check_id,
    console_of,
    flash,
    form,
    parse_id,
    redirect,
    render,
    shown_again_when_refused,
    signed_in,
)
from ethhook.db.models import utcnow
from ethhook.exceptions import InputError
from ethhook.replay.backfill import add_endpoint
from ethhook.service.changes import build_changes
from ethhook.service.endpoints import delete_endpoint, show_endpoint, update_endpoint
from ethhook.service.validation import build_spec
from ethhook.workqueue import enqueue_replays

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

NEW_DEFAULTS = {"finality": "latest", "confirmations": "0", "signing": "hmac"}


def _form_page(
    request: Request,
    values: dict[str, str],
    endpoint_id: int | None,
    error: InputError | None = None,
    status_code: int = 400,
) -> Response:
    """The create (endpoint_id None) or edit form with `values`; a refused one with its error
    beside the field it names (at the top when it names none)."""
    errors = {} if error is None else {error.field or "form": str(error)}
    with signed_in(request) as (_, visitor):
        operator = visitor.principal.application_id is None
    return render(
        request,
        "endpoint_form.html",
        status_code if error else 200,
        values=values,
        errors=errors,
        endpoint_id=endpoint_id,
        operator=operator and endpoint_id is None,
        finalities=form_fields.FINALITIES,
        orders=form_fields.ORDERED,
        signings=form_fields.SIGNINGS,
    )


@router.get("/endpoints/new")
def new_endpoint_page(request: Request) -> Response:
    return _form_page(request, {**form_fields.typed({}), **NEW_DEFAULTS}, None)


def _refused_create(request: Request, values: dict[str, str], message: str) -> Response:
    return _form_page(request, form_fields.typed(values), None, InputError(message), 403)


def _refused_edit(request: Request, values: dict[str, str], message: str) -> Response:
    endpoint_id = check_id(int(request.path_params["endpoint_id"]), "endpoint")
    typed = {k: values.get(k, "") for k in form_fields.EDITABLE}
    kept = {**as_visitor(request, _shown, endpoint_id), **typed}
    return _form_page(request, kept, endpoint_id, InputError(message), 403)


@router.post("/endpoints/new")
@shown_again_when_refused(_refused_create)
def create(request: Request) -> Response:
    settings = console_of(request).settings
    values = form(request)
    try:
        application_id = _application_id(values)
        spec = build_spec(settings=settings, **form_fields.spec_arguments(values))
        made = as_visitor(
            request, add_endpoint, settings, spec, utcnow(), application_id=application_id
        )
    except InputError as exc:
        return _form_page(request, form_fields.typed(values), None, exc)
    if made.dispatch is not None:
        enqueue_replays([made.dispatch])
    # The secret is in this response only (no-store), never in the session.
    return render(request, "created.html", endpoint=made.as_public())


def _application_id(values: dict[str, str]) -> int | None:
    """The operator's form names the application (an application's key makes its own)."""
    try:
        return parse_id(values.get("application_id"), "application")
    except InputError as exc:
        exc.field = "application_id"
        raise


@router.get("/endpoints/{endpoint_id:int}/edit")
def edit_page(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    endpoint = as_visitor(request, show_endpoint, endpoint_id).endpoint
    return _form_page(request, form_fields.shown(endpoint), endpoint_id)


@router.post("/endpoints/{endpoint_id:int}/edit")
@shown_again_when_refused(_refused_edit)
def edit(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    settings = console_of(request).settings
    values = form(request)
    try:
        changes = build_changes(settings, **form_fields.change_arguments(values))
        as_visitor(request, update_endpoint, endpoint_id, changes)
    except InputError as exc:
        typed = {k: values.get(k, "") for k in form_fields.EDITABLE}
        kept = {**as_visitor(request, _shown, endpoint_id), **typed}
        return _form_page(request, kept, endpoint_id, exc)
    flash(request, f"Endpoint {endpoint_id} saved.")
    return redirect(f"/endpoints/{endpoint_id}")


def _shown(db: Any, endpoint_id: int, *, scope: Any) -> dict[str, str]:
    return form_fields.shown(show_endpoint(db, endpoint_id, scope=scope).endpoint)


@router.get("/endpoints/{endpoint_id:int}/delete")
def delete_page(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    details = as_visitor(request, show_endpoint, endpoint_id)
    return render(
        request, "endpoint_delete.html", endpoint=details.endpoint, counts=details.deliveries
    )


@router.post("/endpoints/{endpoint_id:int}/delete")
def delete(request: Request, endpoint_id: int) -> Response:
    check_id(endpoint_id, "endpoint")
    as_visitor(request, delete_endpoint, endpoint_id)
    flash(request, f"Endpoint {endpoint_id} deleted, with its deliveries.")
    return redirect("/endpoints")
