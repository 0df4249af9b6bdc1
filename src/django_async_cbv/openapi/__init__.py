"""OpenAPI 3.1 for ``AsyncAPIView``: the document, and Swagger UI to explore it.

=================  ==============================================================
``routes``         the API views' routes in the URLconf, as path templates
``fields``         JSON Schema of model fields, form fields and path converters
``components``     object, request and problem schemas
``query``          list parameters: pages, cursors, filters, search, ordering
``operations``     one route's operations: parameters, bodies, responses
``document``       ``build_document()``: the whole document
``views``          ``OpenAPIView`` and ``SwaggerUIView``
=================  ==============================================================
"""

from __future__ import annotations

from .document import OPENAPI_VERSION, build_document
from .views import OpenAPIView, SwaggerUIView

__all__ = ["OPENAPI_VERSION", "OpenAPIView", "SwaggerUIView", "build_document"]
