"Package metadata read from settings.ini (nbdev 2's project template does the same)."
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
req = lambda key: cfg.get(key, '').split()
extras = {'dev': req('dev_requirements') + req('viz_requirements'), 'viz': req('viz_requirements')}  # dev includes viz
setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0', url=cfg['git_url'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    package_data={cfg['lib_name']: ['weights/*/*']},  # the shipped pretrained encoders (pretrained_encoders)
    include_package_data=True, python_requires='>=' + cfg['min_python'],
    install_requires=req('requirements'), extras_require=extras,
    entry_points={'console_scripts': req('console_scripts'), 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
