from django.db import models


class Supplier(models.Model):
    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=30, blank=True)


class Item(models.Model):
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, null=True, blank=True)
    sku = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    quantity = models.IntegerField(default=0)
