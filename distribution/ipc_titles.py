"""Titles of common IPC subclasses (English and Chinese), for digest items; unknown ones show the symbol only."""

from __future__ import annotations

# subclass -> (English, Chinese); a small hand-picked table, not the whole scheme
IPC_SUBCLASS_TITLES: dict[str, tuple[str, str]] = {
    "A01N": ("Preservation of bodies; biocides; pest repellants; plant growth regulators", "保存人体或动植物体;杀生剂;害虫驱避剂;植物生长调节剂"),
    "A23L": ("Foods, foodstuffs or non-alcoholic beverages", "食品、食料或非酒精饮料"),
    "A24B": ("Manufacture or preparation of tobacco", "烟草的制造或制备"),
    "A61B": ("Diagnosis; surgery; identification", "诊断;外科;鉴定"),
    "A61F": ("Filters implantable into blood vessels; prostheses; bandages", "可植入血管内的滤器;假体;绷带"),
    "A61K": ("Preparations for medical, dental or toilet purposes", "医用、牙科用或梳妆用的配制品"),
    "A61M": ("Devices for introducing media into, or onto, the body", "将介质输入人体内或输到人体上的器械"),
    "A61N": ("Electrotherapy; magnetotherapy; radiation therapy; ultrasound therapy", "电疗;磁疗;放射疗;超声波疗"),
    "A61P": ("Specific therapeutic activity of chemical compounds or medicinal preparations", "化合物或药物制剂的特定治疗活性"),
    "A63F": ("Card, board or roulette games; video games", "纸牌、棋盘或轮盘赌游戏;视频游戏"),
    "B01D": ("Separation", "分离"),
    "B01J": ("Chemical or physical processes, e.g. catalysis", "化学或物理方法,例如催化作用"),
    "B05D": ("Processes for applying liquids or other fluent materials to surfaces", "对表面涂布流体的一般工艺"),
    "B32B": ("Layered products", "层状产品"),
    "B60L": ("Propulsion of electrically-propelled vehicles", "电动车辆的动力装置"),
    "B60W": ("Conjoint control of vehicle sub-units", "不同类型或不同功能的车辆子系统的联合控制"),
    "B65D": ("Containers for storage or transport", "用于物件或物料贮存或运输的容器"),
    "C07D": ("Heterocyclic compounds", "杂环化合物"),
    "C07K": ("Peptides", "肽"),
    "C08L": ("Compositions of macromolecular compounds", "高分子化合物的组合物"),
    "C12N": ("Microorganisms or enzymes; genetic engineering", "微生物或酶;突变或遗传工程"),
    "C12Q": ("Measuring or testing processes involving enzymes or microorganisms", "包含酶或微生物的测定或检验方法"),
    "G01N": ("Investigating or analysing materials", "借助于测定材料的化学或物理性质来测试或分析材料"),
    "G01R": ("Measuring electric variables; measuring magnetic variables", "测量电变量;测量磁变量"),
    "G01S": ("Radio direction-finding; radio navigation; radar", "无线电定向;无线电导航;雷达"),
    "G02B": ("Optical elements, systems or apparatus", "光学元件、系统或仪器"),
    "G02F": ("Optical devices controlling light from an independent source", "用于控制光的强度、颜色、相位、偏振或方向的器件"),
    "G03F": ("Photomechanical production of textured or patterned surfaces", "图纹面的照相制版工艺"),
    "G05B": ("Control or regulating systems in general", "一般的控制或调节系统"),
    "G06F": ("Electric digital data processing", "电数字数据处理"),
    "G06K": ("Graphical data reading; presentation of data; record carriers", "图形数据读取;数据的呈现;记录载体"),
    "G06N": ("Computing arrangements based on specific computational models", "基于特定计算模型的计算机系统"),
    "G06Q": ("ICT specially adapted for administrative, commercial or financial purposes", "专门适用于行政、商业、金融、管理或监督目的的信息和通信技术"),
    "G06T": ("Image data processing or generation", "一般的图像数据处理或产生"),
    "G06V": ("Image or video recognition or understanding", "图像或视频识别或理解"),
    "G09G": ("Arrangements or circuits for control of indicating devices", "对用静态方法显示可变信息的指示装置进行控制的装置或电路"),
    "G10L": ("Speech analysis or synthesis; speech recognition", "语音分析或合成;语音识别"),
    "G11C": ("Static stores", "静态存储器"),
    "G16H": ("Healthcare informatics", "医疗保健信息学"),
    "H01L": ("Semiconductor devices; electric solid-state devices", "半导体器件;其他类目中不包括的电固体器件"),
    "H01M": ("Processes or means for the direct conversion of chemical energy into electrical energy", "用于直接转变化学能为电能的方法或装置,例如电池组"),
    "H02J": ("Circuit arrangements or systems for supplying or distributing electric power", "供电或配电的电路装置或系统;电能存储系统"),
    "H02M": ("Apparatus for conversion between AC and AC, AC and DC, or DC and DC", "用于交流和交流之间、交流和直流之间、或直流和直流之间变换的设备"),
    "H03M": ("Coding; decoding; code conversion in general", "一般编码、译码或代码转换"),
    "H04B": ("Transmission", "传输"),
    "H04L": ("Transmission of digital information", "数字信息的传输"),
    "H04N": ("Pictorial communication, e.g. television", "图像通信,如电视"),
    "H04W": ("Wireless communication networks", "无线通信网络"),
    "H05K": ("Printed circuits; casings or constructional details of electric apparatus", "印刷电路;电设备的外壳或结构零部件"),
}


def subclass_title(symbol: str, language: str = "en") -> str | None:
    """Title of the IPC/CPC subclass a symbol belongs to (`H01L 21/02` -> semiconductor devices), if known."""
    entry = IPC_SUBCLASS_TITLES.get(symbol.replace(" ", "")[:4].upper())
    if entry is None:
        return None
    return entry[1] if language == "zh" else entry[0]
