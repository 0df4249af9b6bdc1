"""The demo user, created by the migration ``items/0003_demo_user`` and shown on the pages.

A public, fixed password: these settings are for trying the example locally only.
"""

USERNAME = "demo"
PASSWORD = "async-cbv-demo"
#: The permissions the demo user holds: every write on the items.
PERMISSIONS = ("add_item", "change_item", "delete_item", "view_item")
