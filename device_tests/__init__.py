"""device_tests"""
